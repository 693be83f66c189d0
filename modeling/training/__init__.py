"""Training newsbeam's heads on the rebuilt multilingual-e5-small (`newsbeam train ner|stance`), and the readers
of the shared corpora they and the evaluation read in place. Not needed by a pipeline worker at run time."""
