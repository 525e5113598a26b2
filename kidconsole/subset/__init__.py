"""The subset builder: speaker-disjoint, stratified splits that hit the requested hours.

``kidconsole.subset.build.build_subset`` is the entry point; docs/subsets.md
describes the method, the options and the output layout.
"""
