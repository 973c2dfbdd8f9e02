<div class="count">
  % if total:
  Rows {{'{:,}'.format(first)}}–{{'{:,}'.format(last)}} of {{'{:,}'.format(total)}}
  % else:
  No rows
  % end
</div>
% if rows:
<div class="table-wrap">
<table class="data">
  <thead><tr>
    % for col in columns:
    <th scope="col" {{!('aria-sort="%s"' % col['aria']) if col['aria'] else ''}}><a href="{{col['url']}}">{{col['label']}}<span class="arrow">{{col['arrow']}}</span></a></th>
    % end
  </tr></thead>
  <tbody>
  % for row in rows:
    <tr data-key="{{row['key']}}">
    % for i, html in enumerate(row['cells']):
      % if i == 0 and row['url']:
      <td><a class="rowlink" href="{{row['url']}}">{{!html}}</a></td>
      % else:
      <td>{{!html}}</td>
      % end
    % end
    </tr>
  % end
  </tbody>
</table>
</div>
<nav class="pager" aria-label="Pages">
  % if prev_url:
  <a href="{{prev_url}}" rel="prev">← Previous</a>
  % end
  % if next_url:
  <a href="{{next_url}}" rel="next">Next →</a>
  % end
</nav>
% else:
<div class="empty">
  % if active:
  <p>Nothing matches these filters. <a href="{{here}}">Show all {{title.lower()}}</a>.</p>
  % else:
  <p>No {{title.lower()}} yet. Point an agent at this server (the <code>export</code> lines are on the <a href="/">dashboard</a>) or play a run with the demo agents:</p>
  <pre>python -m swf_lite demo-agents</pre>
  % end
</div>
% end
