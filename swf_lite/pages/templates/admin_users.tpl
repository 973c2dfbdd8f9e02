% rebase('admin_base', title=title, user=user, csrf=csrf, notice=notice)
<h1>Users</h1>
<div class="table-wrap">
<table class="data">
  <thead><tr><th scope="col">username</th><th scope="col">staff</th><th scope="col">token</th><th scope="col">created</th><th scope="col"></th></tr></thead>
  <tbody>
  % for row in users:
  % u, q = row['u'], row['q']
    <tr data-key="{{u.username}}">
      <td>{{u.username}}</td>
      <td>
        <form method="post" action="/admin/users/{{q}}/staff/" class="inline">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <label><input type="checkbox" name="is_staff" {{'checked' if u.is_staff else ''}}> staff</label>
          <button type="submit" class="secondary">Save</button>
        </form>
      </td>
      <td>
        % if shown == u.username:
        <span class="token" id="token-{{u.username}}">{{u.token}}</span>
        % else:
        <a href="?show={{q}}">show</a>
        % end
      </td>
      <td>{{u.created_at.strftime('%Y-%m-%d %H:%M') if u.created_at else ''}}</td>
      <td>
        <form method="post" action="/admin/users/{{q}}/rotate/" class="inline">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <button type="submit" class="secondary">Rotate token</button>
        </form>
      </td>
    </tr>
  % end
  </tbody>
</table>
</div>
<section class="card new-user">
  <h2>Add a user</h2>
  <form method="post" action="/admin/users/" class="actions">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label>Username <input name="username" required maxlength="150"></label>
    <label><input type="checkbox" name="is_staff"> staff</label>
    <button type="submit">Create</button>
  </form>
</section>
