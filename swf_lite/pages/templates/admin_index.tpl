% rebase('admin_base', title=title, user=user, csrf=csrf, notice=notice)
<h1>Admin</h1>
<div class="admin-grid">
  <section class="card">
    <h2>Records</h2>
    <table class="data compact">
      <thead><tr><th scope="col">resource</th><th scope="col" class="num">rows</th><th scope="col"></th></tr></thead>
      <tbody>
      % for row in rows:
        <tr><td><a href="{{row['url']}}">{{row['title']}}</a> <code class="muted">{{row['name']}}</code></td><td class="num">{{'{:,}'.format(row['count'])}}</td><td><a href="{{row['add']}}">add</a></td></tr>
      % end
      </tbody>
    </table>
  </section>
  <div class="stack">
    <section class="card">
      <h2>Counters</h2>
      <p class="hint">The numbers the counters hand out next. Lower values may repeat numbers agents already used.</p>
      <form method="post" action="/admin/actions/counters/" class="form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        % for key, value in counters.items():
        <div class="row"><label for="c-{{key}}">{{key.replace('_', ' ')}}</label><input id="c-{{key}}" type="number" min="1" name="{{key}}" value="{{value}}"></div>
        % end
        <div class="actions"><button type="submit">Set counters</button></div>
      </form>
    </section>
    <section class="card">
      <h2>Data</h2>
      <div class="actions">
        <form method="post" action="/admin/actions/demo/" class="inline">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <button type="submit">Load the demo data</button>
        </form>
        <form method="post" action="/admin/actions/reset/" class="inline">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <label><input type="checkbox" name="confirm" required> I mean it</label>
          <button type="submit" class="danger">Delete all records</button>
        </form>
      </div>
      <p class="hint">The demo data (a recorded afternoon: runs, STF files, agents, messages, logs) loads only into an empty store.</p>
    </section>
    <section class="card">
      <h2>Users</h2>
      <p><a href="/admin/users/">Manage users and tokens →</a></p>
    </section>
  </div>
</div>
