from sandbox.redis_server import PrivateRedis, redis_server_binary

__all__ = ["PrivateRedis", "redis_server_binary"]
