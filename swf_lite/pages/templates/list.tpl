% rebase('base', title=title, here=here, live=live)
<div class="head">
  <h1>{{title}}</h1>
  <p class="sub">{{description}}</p>
  <a class="json" href="{{json_url}}" title="The same rows from the REST API">JSON</a>
</div>
% for s in get('sections', []):
% include('section', s=s)
% end
% if get('sections'):
<h2 class="list-title">{{title}}</h2>
% end
<form class="filters" method="get" action="{{here}}" role="search">
  <label class="search"><span>Search</span>
    <input type="search" name="q" value="{{q}}" placeholder="text in any column" autocomplete="off">
  </label>
  % for flt in filters:
  <label><span>{{flt['label']}}</span>
    % if flt['options'] is not None:
    <select name="{{flt['param']}}">
      <option value="">any</option>
      % for value, count in flt['options']:
      <option value="{{value}}" {{!'selected' if str(value) == flt['value'] else ''}}>{{value}} ({{count}})</option>
      % end
    </select>
    % else:
    <input name="{{flt['param']}}" value="{{flt['value']}}" size="14" placeholder="{{flt['hint']}}">
    % end
  </label>
  % end
  % if ordering:
  <input type="hidden" name="ordering" value="{{ordering}}">
  % end
  <button type="submit">Filter</button>
  % if active:
  <a class="clear" href="{{here}}">Clear</a>
  % end
</form>
<section id="rows" class="live-region" data-fragment="rows">
% include('rows', **locals())
</section>
