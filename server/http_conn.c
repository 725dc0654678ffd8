/* http_conn.c - placeholder */
typedef int llmgate_placeholder_http_conn;
