% if messages['rows']:
<ol class="feed-list">
% for row in messages['rows']:
  <li data-key="{{row['key']}}"><a href="{{row['url']}}">{{!row['cells'][1]}}</a> <span class="from">{{!row['cells'][2]}}</span> {{!row['cells'][0]}}</li>
% end
</ol>
% else:
<p class="none">No messages yet. They appear here the moment an agent posts one.</p>
% end
