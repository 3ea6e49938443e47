"""What operators run the service with: the request id and the JSON access
log (``requestlog``), Prometheus metrics (``metrics``, served by ``views``) and
backups of the database and the documents (``backup``)."""
