/* tls.c - placeholder */
typedef int llmgate_placeholder_tls;
