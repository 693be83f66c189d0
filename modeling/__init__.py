"""newsbeam's own transformer models at run time: the rebuilt multilingual-e5-small base, the NER tagger and stance
classifier, precision, MinHash, entity resolution. training/ and evaluation/ beside them build and measure them."""
