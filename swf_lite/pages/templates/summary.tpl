% rebase('base', title=title, here=here, live=live)
<div class="head">
  <h1>Log summary</h1>
  <p class="sub">Records per level for every application and instance, and their newest errors.</p>
  <a class="json" href="/api/logs/summary/">JSON</a>
</div>
% if rows:
<div class="table-wrap">
<table class="data">
  <thead><tr><th scope="col">app</th><th scope="col">instance</th>
  % for lv in levels:
    <th scope="col" class="num">{{lv}}</th>
  % end
    <th scope="col">newest errors</th></tr></thead>
  <tbody>
  % for row in rows:
    <tr>
      <td>{{row['app']}}</td>
      <td><a href="{{row['link']}}">{{row['instance']}}</a></td>
      % for lv in levels:
      <td class="num">{{row['counts'].get(lv, '')}}</td>
      % end
      <td>
      % for e in row['recent']:
        <div class="err"><span class="badge b-{{e['levelname'].lower()}}">{{e['levelname']}}</span> {{e['message'][:160]}} <span class="where">{{e['module']}}.{{e['funcname']}}:{{e['lineno']}}</span> {{!e['when']}}</div>
      % end
      </td>
    </tr>
  % end
  </tbody>
</table>
</div>
% else:
<div class="empty"><p>No logs yet. Agents log here through <code>POST /api/logs/</code> (no token needed).</p></div>
% end
