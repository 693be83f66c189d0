"""newsbeam's own transformer models: the rebuilt multilingual-e5-small base, training and evaluation."""
