"""The shipped run configs: installed as the package ``kidconsole.configs`` (setup.py maps this folder), listed by
``kidconsole config list`` and copied into a project by ``kidconsole config new`` (kidconsole/config_files.py)."""
