<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · swf-lite</title>
<link rel="stylesheet" href="/static/app.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/"><span class="logo" aria-hidden="true">◆</span> swf-lite</a>
  <nav aria-label="Main">
    <a href="/" {{!'aria-current="page"' if get('here') == '/' else ''}}>Dashboard</a>
    % for href, text, main in nav:
    %   if main:
    <a href="{{href}}" {{!'aria-current="page"' if get('here') == href else ''}}>{{text}}</a>
    %   end
    % end
    <details class="more">
      <summary>More</summary>
      <div class="menu">
      % for href, text, main in nav:
      %   if not main:
        <a href="{{href}}" {{!'aria-current="page"' if get('here') == href else ''}}>{{text}}</a>
      %   end
      % end
      </div>
    </details>
    <a href="/admin/" class="admin-link {{'on' if get('here', '').startswith('/admin/') else ''}}">Admin</a>
  </nav>
  <span class="live-dot" id="live-state" title="Live updates" aria-live="polite"></span>
</header>
<main id="main" data-live="{{live}}">
{{!base}}
</main>
<footer>swf-lite {{version}} · times in UTC · <a href="/api/">API</a> · <a href="/api/schema/">OpenAPI</a></footer>
</body>
</html>
