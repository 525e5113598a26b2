"""The corpus: AI Hub label reading, the manifest index, and a synthetic corpus.

``labels`` parses one label JSON (both schema variants), ``sources`` finds label
and audio files in folders and zip archives and pairs them, ``filters`` keeps
or rejects rows with a counted reason, ``index`` runs all of it in parallel
into a manifest, ``synth`` writes a small corpus in the AI Hub layout.
"""
