// Transport security: see the files of this target.
