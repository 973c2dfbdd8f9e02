"""pytest plugin (entry point ``pytest11``): fixtures that run swf-lite for agent tests.

Placeholder until the plugin lands: importing it must stay cheap because pytest loads it in
every session of an environment where swf-lite is installed.
"""
