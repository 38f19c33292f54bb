"""fb-leads-receiver: Meta's leadgen webhooks, verified and stored durably before the 200."""
