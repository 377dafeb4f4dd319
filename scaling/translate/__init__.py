"""Machine translation of a training corpus into more languages (``jobs/translate.py``).

``codes`` maps our language codes onto a translation model's, ``model`` runs the model,
``filters`` drops bad outputs, ``shards`` plans and stores the resumable units of work, and
``job`` runs the shards (in process or on Ray Data actors) and writes the corpus and its manifest.
"""
