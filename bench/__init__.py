"""berth's benchmark: berth and the engine it drives, side by side."""
