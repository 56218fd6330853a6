"""The live dashboard served by `agent-analytics serve` at / (docs/webapp.md): the page's own
static files (static/, no build step, no CDN) and the message audit behind its figures."""
