#include <iostream>
int main() { std::cout << "sluice-controller\n"; return 0; }
