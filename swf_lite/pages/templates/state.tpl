% rebase('base', title=title, here=here, live=live)
<div class="head">
  <h1>Persistent state</h1>
  <p class="sub">The counters agents draw from: each number is handed out once, across restarts and processes.</p>
</div>
<div class="table-wrap">
<table class="data">
  <thead><tr><th scope="col">counter</th><th scope="col" class="num">last handed out</th><th scope="col" class="num">next</th><th scope="col">when</th></tr></thead>
  <tbody>
  % for row in rows:
    <tr><td><code>POST /api/state/{{row['name']}}/</code></td><td class="num">{{row['last']}}</td><td class="num">{{row['next']}}</td><td>{{!row['when']}}</td></tr>
  % end
  </tbody>
</table>
</div>
