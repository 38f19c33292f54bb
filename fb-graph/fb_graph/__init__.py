"""What tap-fb-leads and target-fb-conversions share about Meta's Graph API.

Auth headers and ``appsecret_proof`` (:mod:`fb_graph.auth`), token redaction
(:mod:`fb_graph.redact`), the error envelope and its classification
(:mod:`fb_graph.errors`), usage headers (:mod:`fb_graph.usage`), and a local
Graph API sandbox (:mod:`fb_graph_sandbox`).
"""

DEFAULT_API_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v26.0"

__all__ = ["DEFAULT_API_URL", "DEFAULT_API_VERSION"]
