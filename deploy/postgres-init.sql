-- Each service owns its own database (CONTRACT.md section 1).
CREATE DATABASE auth OWNER todo;
CREATE DATABASE todos OWNER todo;
