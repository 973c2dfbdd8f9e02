% rebase('base', title=title, here=here, live=live)
<div class="head">
  <p class="crumbs"><a href="{{back}}">{{back_title}}</a> /</p>
  <h1>{{title}}</h1>
  <a class="json" href="{{json_url}}" title="This record from the REST API">JSON</a>
</div>
<div id="detail" class="live-region" data-fragment="detail">
% include('detail_body', **locals())
</div>
