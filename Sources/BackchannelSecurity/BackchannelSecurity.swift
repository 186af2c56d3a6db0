// End-to-end security primitives: see the files of this target.
