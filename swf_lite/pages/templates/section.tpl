<section class="card related" data-resource="{{s['resource']}}">
  <h2>{{s['title']}} <span class="n">{{'{:,}'.format(s['total'])}}</span> <a class="all" href="{{s['all_url']}}">all →</a></h2>
  % if s['rows']:
  <div class="table-wrap">
  <table class="data compact">
    <thead><tr>
    % for col in s['columns']:
      <th scope="col">{{col['label']}}</th>
    % end
    </tr></thead>
    <tbody>
    % for row in s['rows']:
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
  % else:
  <p class="none">None yet.</p>
  % end
</section>
