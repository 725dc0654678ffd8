/* proxy.c - placeholder */
typedef int llmgate_placeholder_proxy;
