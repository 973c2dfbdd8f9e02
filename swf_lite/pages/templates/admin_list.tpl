% rebase('admin_base', title=title, user=user, csrf=csrf, notice=notice)
<div class="head">
  <h1>{{plural.capitalize()}}</h1>
  <a class="button" href="/admin/{{r.name}}/add/">Add {{r.label}}</a>
</div>
<form class="filters" method="get" action="/admin/{{r.name}}/" role="search">
  <label class="search"><span>Search</span><input type="search" name="q" value="{{q}}"></label>
  <button type="submit">Search</button>
</form>
% include('rows', **dict(locals(), title=plural, here='/admin/' + r.name + '/', active=bool(q)))
