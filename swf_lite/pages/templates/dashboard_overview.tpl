<div class="cards">
% for c in cards:
  <a class="stat" href="{{c['url']}}"><span class="n">{{'{:,}'.format(c['count'])}}</span><span class="t">{{c['title']}}</span></a>
% end
</div>
<div class="charts">
% for svg in charts:
  <figure class="card chart">{{!svg}}</figure>
% end
</div>
<div class="dash-grid">
  % s = dict(agents, title='Agents', all_url='/agents/', resource='systemagents')
  % include('section', s=s)
  % s = dict(problems, title='Recent warnings and errors', all_url='/logs/?min_level=30', resource='logs')
  % include('section', s=s)
  % for key, title, href in (('runs', 'Latest runs', '/runs/'), ('stf-files', 'Latest STF files', '/stf-files/'), ('fastmon-files', 'Latest fast-monitoring files', '/fastmon-files/'), ('workflow-executions', 'Latest workflow executions', '/workflow-executions/')):
  %   s = dict(latest[key], title=title, all_url=href, resource=key)
  %   include('section', s=s)
  % end
  <section class="card counters">
    <h2>Counters <a class="all" href="/persistent-state/">details →</a></h2>
    <dl>
    % for name, value in counters:
      <dt>{{name}}</dt><dd>{{value}}</dd>
    % end
    </dl>
  </section>
</div>
