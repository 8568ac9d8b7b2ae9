"""Email: zh-CN Jinja2 templates, the outbox, the aiosmtplib relay, signed form links."""
