"""Region geometry shared by the stages, one floor below them: grid cells and candidate masks
(:mod:`.candidates`, :mod:`.cells`, :mod:`.sam`), bit-packed mask rows (:mod:`.bits`), record masks
rasterised (:mod:`.rasterize`) and decoded shapes compared with the truth (:mod:`.compare`)."""
