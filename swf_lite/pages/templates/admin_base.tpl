% rebase('base', title=title, here='/admin/', user=user)
<div class="admin-bar">
  <a href="/admin/">Admin</a> · <a href="/admin/users/">Users</a>
  <span class="who">Signed in as <strong>{{user.username}}</strong></span>
  <form method="post" action="/admin/logout/" class="inline">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <button type="submit" class="secondary">Sign out</button>
  </form>
</div>
% if get('notice'):
<ul class="messages"><li class="{{'error' if notice['error'] else ''}}" role="status">{{notice['text']}}</li></ul>
% end
{{!base}}
