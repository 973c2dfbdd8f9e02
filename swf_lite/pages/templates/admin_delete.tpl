% rebase('admin_base', title=title, user=user, csrf=csrf)
<div class="card">
  <h1>Delete {{r.label}} {{what}}?</h1>
  <p>This cannot be undone. Records that belong to it (for example a run's STF files) are deleted too.</p>
  <form method="post" action="/admin/{{r.name}}/{{key}}/delete/" class="actions">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <button type="submit" class="danger">Delete</button>
    <a href="/admin/{{r.name}}/{{key}}/">Cancel</a>
  </form>
</div>
