// ServiceClients: HTTP services behind circuit breakers (layer 2; knows nothing of jobs).
