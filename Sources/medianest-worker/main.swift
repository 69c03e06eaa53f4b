print("medianest-worker")
