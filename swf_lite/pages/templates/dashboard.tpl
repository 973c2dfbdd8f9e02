% rebase('base', title=title, here=here, live=live)
<div class="head">
  <h1>Dashboard</h1>
  <p class="sub">What the testbed's agents have told this monitor, live.</p>
</div>
<div id="overview" class="live-region" data-fragment="overview">
% include('dashboard_overview', **locals())
</div>
<div class="dash-bottom">
  <section class="card feed">
    <h2>Workflow messages <a class="all" href="/messages/">all →</a></h2>
    <div id="feed" class="live-region" data-fragment="feed">
    % include('dashboard_feed', **locals())
    </div>
  </section>
  <section class="card connect">
    <h2>Point an agent here</h2>
    <pre class="env">{{'\n'.join(env)}}</pre>
    % if not user:
    <p class="hint">The API token is shown after you <a href="/admin/login/?next=/">sign in</a>; <code>python -m swf_lite env</code> prints these lines with it.</p>
    % end
    <p class="hint">No agents at hand? <code>python -m swf_lite demo-agents</code> plays a DAQ run against this server.</p>
  </section>
</div>
