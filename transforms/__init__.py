"""newsbeam's stages, one module each: parse, langid, ner, stance, dedup. Each module keeps its pure logic in
plain functions and wraps it in a thin composite PTransform."""
