/* rewrite.c - placeholder */
typedef int llmgate_placeholder_rewrite;
