"""Platform checks (Telegram, WhatsApp, ...): measurement and verdict."""
