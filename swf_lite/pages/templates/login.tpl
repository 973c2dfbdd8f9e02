% rebase('base', title=title, here=here)
<div class="login card">
  <h1>Sign in to the admin</h1>
  <p class="sub">Use your username and its API token (<code>python -m swf_lite token &lt;user&gt;</code> prints it). Only staff users get in.</p>
  % if error:
  <ul class="messages"><li class="error" role="alert">{{error}}</li></ul>
  % end
  % if get('out'):
  <ul class="messages"><li role="status">You are signed out.</li></ul>
  % end
  <form method="post" action="/admin/login/" class="form">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <input type="hidden" name="next" value="{{next}}">
    <div class="row"><label for="username">Username</label><input id="username" name="username" value="{{username}}" autocomplete="username" required autofocus></div>
    <div class="row"><label for="token">API token</label><input id="token" name="token" type="password" autocomplete="current-password" required></div>
    <div class="actions"><button type="submit">Sign in</button></div>
  </form>
</div>
