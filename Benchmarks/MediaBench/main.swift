print("media-bench")
