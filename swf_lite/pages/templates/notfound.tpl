% rebase('base', title=title, here=here)
<div class="empty">
  <h1>Not found</h1>
  <p>No {{what.lower()}} is known as <code>{{key}}</code>. <a href="{{back}}">See all {{what.lower()}}</a>.</p>
</div>
