% if get('user') and get('csrf'):
% rebase('admin_base', title=title, user=user, csrf=csrf)
% else:
% rebase('base', title=title, here=here)
% end
% back_url, back_text = get('back', ('/admin/', 'Back to the admin'))
<div class="empty">
  <h1>{{title}}</h1>
  <p>{{text}}</p>
  <p><a href="{{back_url}}">{{back_text}}</a></p>
</div>
