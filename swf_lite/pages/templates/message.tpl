% if get('user') and get('csrf'):
% rebase('admin_base', title=title, user=user, csrf=csrf)
% else:
% rebase('base', title=title, here=here)
% end
<div class="empty">
  <h1>{{title}}</h1>
  <p>{{text}}</p>
  <p><a href="/admin/">Back to the admin</a></p>
</div>
