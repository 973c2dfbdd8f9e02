% rebase('admin_base', title=title, user=user, csrf=csrf, notice=notice)
<div class="head">
  <p class="crumbs"><a href="/admin/{{r.name}}/">{{plural.capitalize()}}</a> /</p>
  <h1>{{title}}</h1>
</div>
% if general:
<ul class="messages">
% for msg in general:
  <li class="error" role="alert">{{msg}}</li>
% end
</ul>
% end
<form method="post" action="{{action}}" class="form card" novalidate>
  <input type="hidden" name="csrf" value="{{csrf}}">
  % for row in rows:
  <div class="row {{'has-error' if row['errors'] else ''}}">
    <label for="f-{{row['name']}}">{{row['label']}}</label>
    <div>
      {{!row['widget']}}
      <div class="help">{{row['help']}}</div>
      % if row['errors']:
      <ul class="errorlist" id="e-{{row['name']}}">
      % for msg in row['errors']:
        <li>{{msg}}</li>
      % end
      </ul>
      % end
    </div>
  </div>
  % end
  <div class="actions">
    <button type="submit">Save</button>
    <a href="/admin/{{r.name}}/">Cancel</a>
    % if delete_url:
    <a class="danger-link" href="{{delete_url}}">Delete…</a>
    % end
  </div>
</form>
