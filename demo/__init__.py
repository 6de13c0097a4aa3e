"""`make demo`: the seed example mounted through a real socket against moto (needs the `demo` extra)."""
