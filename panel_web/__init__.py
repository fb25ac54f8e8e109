"""What the participants' panel (bff) and the staff dashboard (staff) both need on the web:
sessions, CSRF and streamed uploads, languages, security headers, the proxies in front,
request ids and metrics, error pages, and the web glue of the server-rendered forms."""
