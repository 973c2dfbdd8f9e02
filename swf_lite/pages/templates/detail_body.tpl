<div class="detail-grid">
  <section class="card fields">
    <dl>
    % for name, html in fields:
      <dt>{{name}}</dt><dd>{{!html}}</dd>
    % end
    </dl>
  </section>
  % if extra:
  <section class="card pictures">
  % for html in extra:
    {{!html}}
  % end
  </section>
  % end
</div>
% for s in sections:
% include('section', s=s)
% end
