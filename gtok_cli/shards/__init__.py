"""Shard folders, one floor below the stages: the file conventions (:mod:`.layout`), the writer
(:mod:`.writer`) and the read side (:mod:`.read`). Export writes them; show, stats, verify (and eval) read
them."""
