// WorkerConfig
