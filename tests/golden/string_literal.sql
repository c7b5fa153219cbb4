'it\'s a \\ back`slash\nline'
