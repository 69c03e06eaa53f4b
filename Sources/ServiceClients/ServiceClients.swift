// ServiceClients: outbound HTTP services behind circuit breakers, webhooks and mail (layer 2; knows nothing of jobs).
//
// HTTP/       one request path for every service: transport, retries with backoff, circuit breakers
// Plex/       the Plex Media Server calls the daemon makes (sections, scans, items, collections, metadata)
// Overseerr/  media requests
// Webhook/    HMAC-SHA256 signatures and signed JSON deliveries
// Mail/       an SMTP client (STARTTLS through OpenSSL) and message formatting
